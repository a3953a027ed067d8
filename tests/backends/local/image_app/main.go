// A probe container for tests/backends/local/test_image_pods.py: an HTTP
// server on $PORT whose endpoints report what the container can and cannot
// do. Built static (CGO_ENABLED=0) so the image holds nothing else.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// result is "ok" or the error the attempt ended with.
func result(err error) string {
	if err == nil {
		return "ok"
	}
	return "denied: " + err.Error()
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "fail" {
		fmt.Println("probe: refusing to start on purpose")
		os.Exit(3)
	}
	if len(os.Args) > 1 && os.Args[1] == "idle" {
		fmt.Println("probe: running, never listening")
		for {
			time.Sleep(time.Hour)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("/unhealthy", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		wd, _ := os.Getwd()
		reply(w, map[string]any{"env": env, "uid": os.Getuid(), "gid": os.Getgid(), "cwd": wd, "pid": os.Getpid()})
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		reply(w, result(os.WriteFile(r.URL.Query().Get("path"), []byte("x"), 0o644)))
	})
	mux.HandleFunc("/chmod", func(w http.ResponseWriter, r *http.Request) {
		mode, _ := strconv.ParseUint(r.URL.Query().Get("mode"), 8, 32)
		// syscall.Chmod passes the mode as is (os.Chmod would translate it).
		reply(w, result(syscall.Chmod(r.URL.Query().Get("path"), uint32(mode))))
	})
	mux.HandleFunc("/stat", func(w http.ResponseWriter, r *http.Request) {
		var st syscall.Stat_t
		if err := syscall.Stat(r.URL.Query().Get("path"), &st); err != nil {
			reply(w, result(err))
			return
		}
		reply(w, map[string]any{"mode": st.Mode, "uid": st.Uid})
	})
	mux.HandleFunc("/unshare", func(w http.ResponseWriter, r *http.Request) {
		reply(w, result(syscall.Unshare(syscall.CLONE_NEWUSER)))
	})
	mux.HandleFunc("/connect", func(w http.ResponseWriter, r *http.Request) {
		conn, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), 2*time.Second)
		if err == nil {
			conn.Close()
		}
		reply(w, result(err))
	})
	mux.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		url := os.Getenv(r.URL.Query().Get("env")) + r.URL.Query().Get("path")
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
		if err != nil {
			reply(w, result(err))
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		reply(w, map[string]any{"status": resp.StatusCode, "body": string(body)})
	})
	mux.HandleFunc("/alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		var keep [][]byte
		for i := 0; i < mb; i++ {
			chunk := make([]byte, 1<<20)
			for j := range chunk {
				chunk[j] = 1
			}
			keep = append(keep, chunk)
		}
		reply(w, len(keep))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reply(w, map[string]any{
			"method":  r.Method,
			"path":    r.URL.Path,
			"query":   r.URL.RawQuery,
			"headers": r.Header,
			"body":    string(body),
		})
	})
	fmt.Println("probe: listening on", os.Getenv("PORT"))
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), mux); err != nil {
		fmt.Println("probe:", err)
		os.Exit(1)
	}
}
