package realtime

// DirectorySize returns how many leases d holds, expired or not.
func DirectorySize(d *MemoryDirectory) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.leases)
}
