package fault

import "syscall"

// childAttr puts a child in its own process group (a Ctrl-C of the run
// reaches the run, which stops its children in order) and kills it if the
// run dies (Pdeathsig), so no private server outlives a killed run.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
