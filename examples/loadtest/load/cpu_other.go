//go:build !unix

package load

// processCPU is not measured on this system.
func processCPU() float64 { return 0 }

// serverCPU is not measured on this system.
func serverCPU(int) float64 { return -1 }
