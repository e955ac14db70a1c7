// Package demo is an example: the checker skips examples/ (the copy step
// covers them), though it mentions internal/secret.
package demo

import "example.com/fixture/internal/secret"

// Demo returns an internal type.
func Demo() secret.Token { return secret.Token{} }
