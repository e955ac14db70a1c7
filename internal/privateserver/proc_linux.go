package privateserver

import "syscall"

// childAttr puts a server in its own process group (a Ctrl-C in the
// terminal reaches the caller, which stops its servers in order) and kills
// it if the caller dies (Pdeathsig), so no private server outlives a
// killed run or test binary.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
