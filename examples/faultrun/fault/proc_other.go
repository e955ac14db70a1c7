//go:build !linux

package fault

import "syscall"

// childAttr puts a child in its own process group. Outside Linux there is
// no Pdeathsig: a run killed with SIGKILL leaves its children running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
