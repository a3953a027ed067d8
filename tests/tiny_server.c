/* The smallest image server the readiness gate accepts: listens on port
 * 8080 and answers every connection "200 ok". No libc (built with
 * -nostdlib -static), so an image holding it stays a few KiB and the
 * registry quota tests can count its bytes. */

static long sys3(long number, long a, long b, long c) {
    long result;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return result;
}

static long sys5(long number, long a, long b, long c, long d, long e) {
    long result;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return result;
}

enum { READ = 0, WRITE = 1, CLOSE = 3, SOCKET = 41, ACCEPT = 43, BIND = 49, LISTEN = 50,
       SETSOCKOPT = 54, EXIT = 60 };

struct address {
    unsigned short family;
    unsigned short port; /* network byte order */
    unsigned int host;
    char zero[8];
};

static const char ANSWER[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

void _start(void) {
    long server = sys3(SOCKET, 2 /* AF_INET */, 1 /* SOCK_STREAM */, 0);
    int one = 1;
    sys5(SETSOCKOPT, server, 1 /* SOL_SOCKET */, 2 /* SO_REUSEADDR */, (long)&one, sizeof one);
    struct address address = {2, (unsigned short)((8080 >> 8) | ((8080 & 0xff) << 8)), 0, {0}};
    if (sys3(BIND, server, (long)&address, sizeof address) < 0 || sys3(LISTEN, server, 64, 0) < 0)
        sys3(EXIT, 1, 0, 0);
    for (;;) {
        long client = sys3(ACCEPT, server, 0, 0);
        if (client < 0)
            continue;
        char request[2048];
        sys3(READ, client, (long)request, sizeof request);
        sys3(WRITE, client, (long)ANSWER, sizeof ANSWER - 1);
        sys3(CLOSE, client, 0, 0);
    }
}
