//go:build !unix

package realtime

import (
	"net"
	"syscall"
)

// rawConnOf returns nil: writes that do not wait are implemented on unix
// only; elsewhere every frame goes through the writer goroutine.
func rawConnOf(net.Conn) syscall.RawConn { return nil }

func (w *frameWriter) rawWrite(uintptr) bool {
	w.rawN = 0
	return true
}
