// Command ignite-exec is the pre-started process of the local backend's
// "exec" pools (docs/pod-protocol.md, Pre-started pools): it stands in for a
// compiled app (Go, Rust) whose binary is not known yet, inside the pod's
// sandbox, as the pod's uid.
//
//	ignite-exec /code/app [args...]
//
// It serves the pod protocol on IGNITE_SOCKET: GET /_ignite/health is 503
// (up, nothing loaded), and the one POST /_ignite/load gives the app's
// identity and env. On load it checks that the binary can be run, stops
// accepting, answers 202, and execve(2)s the binary with the app's
// environment. The listening socket itself is handed over: it stays open
// across the exec, its number in IGNITE_LISTEN_FD, and the SDKs serve on it
// instead of binding IGNITE_SOCKET again, so the health probe the backend
// sends right after the 202 waits in the socket's backlog and is answered
// by the app as soon as it serves. The process keeps its pid, sandbox, uid,
// cgroups and output pipes; nothing else of the launcher survives the exec.
//
// A binary that cannot be run is refused with 500 and the reason; one that
// starts and fails exits, and the backend reports its output.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxLoadBytes bounds a load request's body: it holds an app's env, which
// the platform caps far below this.
const maxLoadBytes = 4 << 20

// ioTimeout bounds how long one connection may take to send its request;
// only the backend connects, so a slow one is a stuck one.
const ioTimeout = 10 * time.Second

// loadRequest is the body of POST /_ignite/load (pod_client.load_request).
type loadRequest struct {
	CodeDir        string            `json:"code_dir"`
	FunctionID     string            `json:"function_id"`
	OrganizationID string            `json:"organization_id"`
	Version        int64             `json:"version"`
	MaxConcurrency int               `json:"max_concurrency"`
	Env            map[string]string `json:"env"`
}

// launcher is the state of the one pre-started process.
type launcher struct {
	argv     []string
	socket   string
	listener *net.UnixListener
	// loading is taken by the first load; every later one is refused.
	loading sync.Mutex
	loaded  bool
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: ignite-exec BINARY [ARGS...]")
	}
	socket := os.Getenv("IGNITE_SOCKET")
	if socket == "" {
		fail("IGNITE_SOCKET is not set")
	}
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		fail(fmt.Sprintf("remove stale socket %s: %v", socket, err))
	}
	listener, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		fail(err.Error())
	}
	l := &launcher{argv: os.Args[1:], socket: socket, listener: listener}
	// An idle pool process has nothing to drain: SIGTERM ends it at once.
	// (Signal dispositions are reset by execve, so the app sees the default.)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-stop
		os.Exit(0)
	}()
	for {
		conn, err := listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				select {} // a load is replacing the process
			}
			fail(err.Error())
		}
		go l.serve(conn)
	}
}

func (l *launcher) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(ioTimeout))
	request, err := http.ReadRequest(bufio.NewReader(conn))
	if err != nil {
		respond(conn, http.StatusBadRequest, errorBody("malformed request"))
		return
	}
	switch {
	case request.URL.Path == "/_ignite/health":
		respond(conn, http.StatusServiceUnavailable, `{"ready": false}`)
	case request.URL.Path == "/_ignite/load" && request.Method == http.MethodPost:
		l.load(conn, request)
	default:
		respond(conn, http.StatusServiceUnavailable, errorBody("no app loaded"))
	}
}

// load replaces the process with the app's binary; it returns only when it
// refused the request.
func (l *launcher) load(conn net.Conn, request *http.Request) {
	if !l.loading.TryLock() {
		respond(conn, http.StatusConflict, errorBody("an app is being loaded already"))
		return
	}
	if l.loaded {
		l.loading.Unlock()
		respond(conn, http.StatusConflict, errorBody("an app is loaded already"))
		return
	}
	refuse := func(message string) {
		fmt.Fprintln(os.Stderr, "ignite-exec: "+message)
		respond(conn, http.StatusInternalServerError, errorBody(message))
		l.loading.Unlock()
	}
	body, err := io.ReadAll(io.LimitReader(request.Body, maxLoadBytes+1))
	if err != nil || len(body) > maxLoadBytes {
		refuse("cannot read the load request")
		return
	}
	var spec loadRequest
	if err := json.Unmarshal(body, &spec); err != nil {
		refuse("malformed load request: " + err.Error())
		return
	}
	if spec.FunctionID == "" || spec.CodeDir == "" {
		refuse("the load request names no app")
		return
	}
	if err := runnable(l.argv[0]); err != nil {
		refuse(fmt.Sprintf("cannot start the app: %v", err))
		return
	}
	inherited, err := l.handOver()
	if err != nil {
		refuse(fmt.Sprintf("cannot hand the socket over: %v", err))
		return
	}
	l.loaded = true
	env := appEnv(spec, os.Environ())
	env = append(env, "IGNITE_LISTEN_FD="+strconv.Itoa(inherited.fd))
	respond(conn, http.StatusAccepted, `{"ok": true, "pending": true}`)
	_ = conn.Close()
	err = syscall.Exec(l.argv[0], l.argv, env)
	runtime.KeepAlive(inherited.file)
	// Too late to refuse: the backend sees the exit and this message.
	fail(fmt.Sprintf("cannot start the app %s: %v", l.argv[0], err))
}

// handedOver is the listening socket as the app inherits it.
type handedOver struct {
	file *os.File
	fd   int
}

// handOver stops this process accepting and returns a copy of the listening
// socket that survives execve: connections made from now on wait in its
// backlog for the app, and the socket file stays where it is.
func (l *launcher) handOver() (handedOver, error) {
	file, err := l.listener.File() // a duplicate, close-on-exec
	if err != nil {
		return handedOver{}, err
	}
	raw, err := file.SyscallConn()
	if err != nil {
		return handedOver{}, err
	}
	fd := -1
	var flagErr error
	err = raw.Control(func(descriptor uintptr) {
		fd = int(descriptor)
		_, _, errno := syscall.Syscall(syscall.SYS_FCNTL, descriptor, syscall.F_SETFD, 0)
		if errno != 0 {
			flagErr = errno
		}
	})
	if err == nil {
		err = flagErr
	}
	if err != nil {
		_ = file.Close()
		return handedOver{}, err
	}
	l.listener.SetUnlinkOnClose(false)
	_ = l.listener.Close()
	return handedOver{file: file, fd: fd}, nil
}

// runnable says why path cannot be executed, checking what can be checked
// before the point of no return.
func runnable(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if err := syscall.Access(path, 0x1 /* X_OK */); err != nil {
		return fmt.Errorf("%s is not executable: %w", path, err)
	}
	return nil
}

// appEnv is the environment a directly started pod of the app would have:
// the app's own variables, the platform's variables about the app, and the
// pod's runtime variables (this process's), which win over the app's.
func appEnv(spec loadRequest, own []string) []string {
	merged := map[string]string{}
	for name, value := range spec.Env {
		merged[name] = value
	}
	merged["IGNITE_CODE_DIR"] = spec.CodeDir
	merged["IGNITE_FUNCTION_ID"] = spec.FunctionID
	organization := spec.OrganizationID
	if organization == "" {
		organization, _, _ = strings.Cut(spec.FunctionID, "/")
	}
	merged["IGNITE_ORGANIZATION_ID"] = organization
	merged["IGNITE_VERSION"] = strconv.FormatInt(spec.Version, 10)
	concurrency := spec.MaxConcurrency
	if concurrency < 1 {
		concurrency = 1
	}
	for _, entry := range own {
		name, value, _ := strings.Cut(entry, "=")
		if name != "IGNITE_MAX_CONCURRENCY" {
			merged[name] = value
		}
	}
	merged["IGNITE_MAX_CONCURRENCY"] = strconv.Itoa(concurrency)
	env := make([]string, 0, len(merged))
	for name, value := range merged {
		env = append(env, name+"="+value)
	}
	return env
}

func respond(conn net.Conn, status int, body string) {
	fmt.Fprintf(conn,
		"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}

func errorBody(message string) string {
	encoded, _ := json.Marshal(map[string]string{"error": message})
	return string(encoded)
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "ignite-exec: "+message)
	os.Exit(127)
}
