// Package fault is the fault run of the reference game server: it starts a
// private mariadbd and redis-server (own ports and data directories,
// loopback only: shardtest.StartMariaDBServer and
// sessiontest.StartRedisServer) and the game server on them as child processes, plays
// virtual players against it — shop.buy, shop.buy_iap and mail.claim_all,
// each request sent as one to three racing copies with one request id,
// each copy retried as PROTOCOL.md §12 says — while it kills the game
// server with SIGKILL, restarts Redis empty, kills mariadbd with SIGKILL
// and freezes it with SIGSTOP. After the faults it lets every copy finish,
// and AuditRun checks the databases against every answer the clients got:
// no confirmed answer lost, nothing applied that was refused, no receipt
// redeemed and not granted, nothing applied twice, every balance equal to
// its ledger. Run drives it; command examples/faultrun is its main. Unix
// only (signals, process groups).
package fault
