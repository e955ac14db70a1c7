package idempotencytest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/madang-io/madang/idempotency"
)

// ErrInjected is the error FlakyStore returns for an injected failure.
var ErrInjected = errors.New("idempotencytest: injected store failure")

// FlakyStore wraps a Store and fails chosen calls, to test how code above a
// store behaves when the store is down at each step. Safe for concurrent
// use.
type FlakyStore struct {
	idempotency.Store

	mu                         sync.Mutex
	failBegin, failComplete    int
	failRelease                int
	begins, completes, release int
}

var _ idempotency.Store = (*FlakyStore)(nil)

// NewFlakyStore wraps s.
func NewFlakyStore(s idempotency.Store) *FlakyStore { return &FlakyStore{Store: s} }

// FailNext makes the next n calls of Begin, Complete and Release
// (counted separately) fail with ErrInjected without reaching the store.
func (f *FlakyStore) FailNext(begin, complete, release int) {
	f.mu.Lock()
	f.failBegin, f.failComplete, f.failRelease = begin, complete, release
	f.mu.Unlock()
}

// Calls returns how many calls of each method reached the wrapped store.
func (f *FlakyStore) Calls() (begin, complete, release int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.begins, f.completes, f.release
}

func (f *FlakyStore) take(n *int, count *int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *n > 0 {
		*n--
		return true
	}
	*count++
	return false
}

// Begin implements idempotency.Store.
func (f *FlakyStore) Begin(ctx context.Context, scope idempotency.Scope, key string, fp idempotency.Fingerprint, token string, lease time.Duration) (idempotency.Begin, error) {
	if f.take(&f.failBegin, &f.begins) {
		return idempotency.Begin{}, ErrInjected
	}
	return f.Store.Begin(ctx, scope, key, fp, token, lease)
}

// Complete implements idempotency.Store.
func (f *FlakyStore) Complete(ctx context.Context, scope idempotency.Scope, key, token string, res idempotency.Result, retention time.Duration) error {
	if f.take(&f.failComplete, &f.completes) {
		return ErrInjected
	}
	return f.Store.Complete(ctx, scope, key, token, res, retention)
}

// Release implements idempotency.Store.
func (f *FlakyStore) Release(ctx context.Context, scope idempotency.Scope, key, token string) error {
	if f.take(&f.failRelease, &f.release) {
		return ErrInjected
	}
	return f.Store.Release(ctx, scope, key, token)
}
