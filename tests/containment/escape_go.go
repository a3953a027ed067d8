// An app that tries the ways out of its pod, in Go, and says how each went.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"ignite"
)

func outcome(err error) string {
	if err == nil {
		return "allowed"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return "refused: " + errnoName(errno)
	}
	return "refused: " + err.Error()
}

func errnoName(errno syscall.Errno) string {
	switch errno {
	case syscall.EPERM:
		return "EPERM"
	case syscall.EACCES:
		return "EACCES"
	case syscall.ENOSPC:
		return "ENOSPC"
	case syscall.ENOSYS:
		return "ENOSYS"
	}
	return fmt.Sprintf("errno %d", int(errno))
}

func places() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range []string{"/tmp", "/dev/shm", os.Getenv("HOME"), filepath.Dir(os.Getenv("IGNITE_SOCKET"))} {
		if p != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func escape() map[string]any {
	out := map[string]any{"uid": os.Getuid(), "gid": os.Getgid()}
	for _, place := range places() {
		path := filepath.Join(place, "planted")
		if err := os.WriteFile(path, []byte("#!/bin/sh\nid\n"), 0o755); err != nil {
			out["write "+place] = outcome(err)
			continue
		}
		out["chmod u+s "+place] = outcome(syscall.Chmod(path, 0o4755))
		out["chmod g+s "+place] = outcome(syscall.Chmod(path, 0o2755))
		fd, err := syscall.Open(path+"-created", syscall.O_CREAT|syscall.O_WRONLY, 0o4755)
		if err == nil {
			syscall.Close(fd)
		}
		out["create u+s "+place] = outcome(err)
		if info, err := os.Stat(path); err == nil {
			out["mode "+place] = fmt.Sprintf("%#o", uint32(info.Mode().Perm())|modeBits(info))
		}
	}
	out["unshare user"] = outcome(syscall.Unshare(syscall.CLONE_NEWUSER))
	out["unshare mount"] = outcome(syscall.Unshare(syscall.CLONE_NEWNS))
	out["mount"] = outcome(syscall.Mount("none", "/tmp", "tmpfs", 0, ""))
	child := exec.Command("sleep", "30")
	if err := child.Start(); err == nil {
		out["ptrace"] = outcome(syscall.PtraceAttach(child.Process.Pid))
		child.Process.Kill()
		child.Wait()
	}
	cmd := exec.Command("unshare", "-r", "id", "-u")
	text, err := cmd.Output()
	code := 0
	if err != nil {
		code = 1
	}
	out["unshare -r"] = fmt.Sprintf("exit %d: %s", code, strings.TrimSpace(string(text)))
	out["setuid 0"] = outcome(syscall.Setuid(0))
	return out
}

func modeBits(info os.FileInfo) uint32 {
	bits := uint32(0)
	if info.Mode()&os.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if info.Mode()&os.ModeSetgid != 0 {
		bits |= 0o2000
	}
	return bits
}

func fill(limitMB int) map[string]any {
	out := map[string]any{}
	chunk := make([]byte, 1<<20)
	for _, place := range places() {
		path := filepath.Join(place, "filler")
		f, err := os.Create(path)
		if err != nil {
			out[place] = outcome(err)
			continue
		}
		written := 0
		var failed error
		for written < limitMB {
			if _, err := f.Write(chunk); err != nil {
				failed = err
				break
			}
			written++
		}
		f.Close()
		os.Remove(path)
		if failed != nil {
			out[place] = fmt.Sprintf("%s after %d MiB", strings.TrimPrefix(outcome(failed), "refused: "), written)
		} else {
			out[place] = fmt.Sprintf("wrote %d MiB", written)
		}
	}
	return out
}

func handler(payload []byte, ctx *ignite.Context) ([]byte, error) {
	var ask struct {
		Do string `json:"do"`
		MB int    `json:"mb"`
	}
	if err := json.Unmarshal(payload, &ask); err != nil {
		return nil, err
	}
	switch ask.Do {
	case "escape":
		return json.Marshal(escape())
	case "fill":
		return json.Marshal(fill(ask.MB))
	}
	return nil, fmt.Errorf("unknown action %q", ask.Do)
}

func main() {
	ignite.Start(handler)
}
