//go:build !linux

package privateserver

import "syscall"

// childAttr puts a server in its own process group. Outside Linux there is
// no Pdeathsig: a caller killed with SIGKILL leaves its servers running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
