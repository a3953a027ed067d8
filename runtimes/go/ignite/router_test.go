package ignite

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serveOnce(t *testing.T, handler Handler, method, path, body string) *http.Response {
	t.Helper()
	rt := newRouter(handler, podIdentity{functionID: "acme/hello", organizationID: "acme"})
	request := httptest.NewRequest(method, path, strings.NewReader(body))
	request.Header.Set(executionIDHeader, "01JEXEC")
	request.Header.Set("X-Custom", "yes")
	recorder := httptest.NewRecorder()
	rt.ServeHTTP(recorder, request)
	return recorder.Result()
}

func TestResultIsSentVerbatimWithTheContext(t *testing.T) {
	echo := func(payload []byte, ctx *Context) ([]byte, error) {
		return []byte(string(payload) + "|" + ctx.ExecutionID + "|" + ctx.FunctionID + "|" +
			ctx.OrganizationID + "|" + ctx.Headers.Get("X-Custom")), nil
	}
	response := serveOnce(t, echo, http.MethodPost, "/", "raw")
	body, _ := io.ReadAll(response.Body)
	if response.StatusCode != http.StatusOK {
		t.Fatalf("status %d", response.StatusCode)
	}
	if got := response.Header.Get("Content-Type"); got != "application/octet-stream" {
		t.Fatalf("content type %q", got)
	}
	if string(body) != "raw|01JEXEC|acme/hello|acme|yes" {
		t.Fatalf("body %q", body)
	}
}

func TestErrorsAndPanicsAre500WithAMessage(t *testing.T) {
	cases := map[string]Handler{
		"bad input": func([]byte, *Context) ([]byte, error) { return nil, errors.New("bad input") },
		"boom":      func([]byte, *Context) ([]byte, error) { panic("boom") },
	}
	for want, handler := range cases {
		response := serveOnce(t, handler, http.MethodPost, "/", "")
		var body map[string]string
		if err := json.NewDecoder(response.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if response.StatusCode != http.StatusInternalServerError || !strings.Contains(body["error"], want) {
			t.Fatalf("%s: status %d, body %v", want, response.StatusCode, body)
		}
	}
}

func TestPlatformEndpoints(t *testing.T) {
	never := func([]byte, *Context) ([]byte, error) {
		t.Fatal("the handler must not see platform requests")
		return nil, nil
	}
	for path, status := range map[string]int{
		"/_ignite/health": http.StatusOK,
		"/_ignite/load":   http.StatusConflict,
		"/_ignite/other":  http.StatusNotFound,
	} {
		if got := serveOnce(t, never, http.MethodGet, path, "").StatusCode; got != status {
			t.Fatalf("%s: status %d, want %d", path, got, status)
		}
	}
}
