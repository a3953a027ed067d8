// The image app of tests/backends/kubernetes/test_image_apps.py: an HTTP
// server on $PORT that answers /healthz, echoes every other request and
// says what it runs as. Built static (CGO_ENABLED=0) for a FROM-scratch image.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		home := os.Getenv("HOME")
		// HOME must be writable, also when it lies below /tmp.
		wrote := os.WriteFile(filepath.Join(home, "probe"), body, 0o600)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"method":        r.Method,
			"path":          r.URL.Path,
			"query":         r.URL.RawQuery,
			"body":          string(body),
			"port":          os.Getenv("PORT"),
			"function_id":   os.Getenv("IGNITE_FUNCTION_ID"),
			"home":          home,
			"home_writable": wrote == nil,
			"uid":           os.Getuid(),
			"gid":           os.Getgid(),
			"from_app_env":  os.Getenv("GREETING"),
		})
	})
	fmt.Println("image app listening on", os.Getenv("PORT"))
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), mux); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
