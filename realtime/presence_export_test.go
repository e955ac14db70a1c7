package realtime

// PresenceSizes returns how many users and channels p holds, expired or not.
func PresenceSizes(p *MemoryPresence) (users, channels int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns), len(p.members)
}
