//go:build unix

package realtime

import (
	"net"
	"syscall"
)

// rawConnOf returns the socket under nc for writes that do not wait
// (frameWriter.tryWrite), or nil when nc is not a plain socket (TLS: the
// hub then writes through the writer goroutine only).
func rawConnOf(nc net.Conn) syscall.RawConn {
	var rc syscall.RawConn
	var err error
	switch c := nc.(type) { // not a wrapper: its own Write would be bypassed
	case *net.TCPConn:
		rc, err = c.SyscallConn()
	case *net.UnixConn:
		rc, err = c.SyscallConn()
	}
	if err != nil {
		return nil
	}
	return rc
}

// rawWrite is the callback of syscall.RawConn.Write: one write(2) of w.raw
// on the non-blocking socket. It never asks the runtime to wait for the
// socket (it always returns true): a full socket buffer shows as
// w.rawN <= 0 (EAGAIN) or a short count.
func (w *frameWriter) rawWrite(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), w.raw)
		if err == syscall.EINTR {
			continue
		}
		w.rawN = n
		return true
	}
}
