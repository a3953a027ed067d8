// A tiny HTTP server for tests/images/: the program a FROM-scratch image
// runs. Built static (CGO_ENABLED=0), so the image needs nothing else.
package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from", os.Getenv("GREETING"))
	})
	if err := http.ListenAndServe(":8081", nil); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
