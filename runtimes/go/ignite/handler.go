// Package ignite is the Go SDK of Ignite's managed Go runtime.
//
// A program registers one Handler with Start; the SDK owns the HTTP server,
// the socket and the readiness probe the platform talks to (see the pod
// protocol in the Ignite repository, docs/pod-protocol.md). The SDK uses the
// standard library only, so a build never needs the network for it.
package ignite

import "net/http"

// Handler answers one invocation. payload is the raw request body. The
// returned bytes are sent verbatim as application/octet-stream; a non-nil
// error becomes HTTP 500 with the JSON body {"error": "<message>"}.
type Handler func(payload []byte, ctx *Context) ([]byte, error)

// Context describes the invocation a Handler is answering.
type Context struct {
	// ExecutionID is this invocation's ID (a ULID).
	ExecutionID string
	// FunctionID is the app's ID, "org/name".
	FunctionID string
	// OrganizationID is the owning organization's ID.
	OrganizationID string
	// Headers are the inbound request's headers.
	Headers http.Header
}
