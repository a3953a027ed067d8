package ignite

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

// Start serves handler until the platform stops the pod, then exits the
// process. It never returns: a pod that cannot listen exits with status 1.
func Start(handler Handler) {
	if err := serve(handler); err != nil {
		log.Printf("ignite: %v", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serve listens where the platform says (IGNITE_SOCKET, else IGNITE_PORT),
// answers until SIGTERM, then drains in-flight requests before returning.
func serve(handler Handler) error {
	listener, err := listen()
	if err != nil {
		return err
	}
	server := &http.Server{Handler: newRouter(handler, podIdentityFromEnv())}

	// SIGTERM means "stop accepting, finish what is in flight, exit"; the
	// backend follows up with SIGKILL after its grace period, so Shutdown
	// needs no deadline of its own.
	stop, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()

	select {
	case err := <-served:
		return err
	case <-stop.Done():
	}
	if err := server.Shutdown(context.Background()); err != nil {
		return err
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func listen() (net.Listener, error) {
	if fd := os.Getenv("IGNITE_LISTEN_FD"); fd != "" {
		// A pre-started pod's launcher handed its listening socket over
		// (docs/pod-protocol.md): requests may already wait on it.
		return inheritedListener(fd)
	}
	if path := os.Getenv("IGNITE_SOCKET"); path != "" {
		// A socket file left by a previous pod on the same path would make
		// bind fail with EADDRINUSE.
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
		return net.Listen("unix", path)
	}
	if port := os.Getenv("IGNITE_PORT"); port != "" {
		return net.Listen("tcp", ":"+port)
	}
	return nil, errors.New("neither IGNITE_SOCKET nor IGNITE_PORT is set")
}

func inheritedListener(fd string) (net.Listener, error) {
	number, err := strconv.Atoi(fd)
	if err != nil || number < 0 {
		return nil, fmt.Errorf("IGNITE_LISTEN_FD=%q is not a file descriptor", fd)
	}
	file := os.NewFile(uintptr(number), "ignite-socket")
	defer file.Close() // FileListener keeps a close-on-exec duplicate
	listener, err := net.FileListener(file)
	if err != nil {
		return nil, fmt.Errorf("the inherited socket IGNITE_LISTEN_FD=%d: %w", number, err)
	}
	return listener, nil
}
