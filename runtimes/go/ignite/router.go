package ignite

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
)

// Paths under this prefix belong to the platform, never to the app.
const platformPathPrefix = "/_ignite/"

// executionIDHeader carries the invocation's ID from the platform.
const executionIDHeader = "X-Ignite-Execution-Id"

// podIdentity is what the pod knows about the app it serves.
type podIdentity struct {
	functionID     string
	organizationID string
}

func podIdentityFromEnv() podIdentity {
	return podIdentity{
		functionID:     os.Getenv("IGNITE_FUNCTION_ID"),
		organizationID: os.Getenv("IGNITE_ORGANIZATION_ID"),
	}
}

// router answers the platform's own endpoints and hands every other request
// to the user's handler.
type router struct {
	handler  Handler
	identity podIdentity
}

func newRouter(handler Handler, identity podIdentity) *router {
	return &router{handler: handler, identity: identity}
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == platformPathPrefix+"health":
		// The handler is compiled in, so the pod is ready as soon as it listens.
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	case r.URL.Path == platformPathPrefix+"load":
		// Go pods start with their code; there is nothing to specialize.
		writeJSON(w, http.StatusConflict, map[string]string{"error": "this runtime is already loaded"})
	case strings.HasPrefix(r.URL.Path, platformPathPrefix):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown platform endpoint"})
	default:
		rt.invoke(w, r)
	}
}

func (rt *router) invoke(w http.ResponseWriter, r *http.Request) {
	payload, err := io.ReadAll(r.Body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "could not read the request body: " + err.Error()})
		return
	}
	ctx := &Context{
		ExecutionID:    r.Header.Get(executionIDHeader),
		FunctionID:     rt.identity.functionID,
		OrganizationID: rt.identity.organizationID,
		Headers:        r.Header,
	}
	mark(ctx.ExecutionID, "begin")
	defer mark(ctx.ExecutionID, "end")
	result, err := call(rt.handler, payload, ctx)
	if err != nil {
		log.Printf("ignite: execution %s failed: %v", ctx.ExecutionID, err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(result)
}

// mark writes a begin or end mark of an execution to stdout and stderr
// (docs/pod-protocol.md, "Logs"): in each pipe's own order, the lines the
// handler prints between the two marks are the execution's, however late
// the platform reads them.
func mark(executionID, event string) {
	if executionID == "" {
		return
	}
	encoded, err := json.Marshal(map[string]string{"execution_id": executionID, "event": event})
	if err != nil {
		return
	}
	record := append(append([]byte{0x1e}, encoded...), '\n')
	_, _ = os.Stdout.Write(record)
	_, _ = os.Stderr.Write(record)
}

// call runs the handler, turning a panic into an error so one bad request
// does not take the pod (and every other in-flight request) down.
func call(handler Handler, payload []byte, ctx *Context) (result []byte, err error) {
	defer func() {
		if recovered := recover(); recovered != nil {
			result, err = nil, fmt.Errorf("panic: %v", recovered)
		}
	}()
	return handler(payload, ctx)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	encoded, err := json.Marshal(body)
	if err != nil {
		encoded = []byte(`{"error": "internal error"}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(encoded)
}
