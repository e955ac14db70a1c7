// Package sub is a nested public package.
package sub

import "example.com/fixture/internal/secret"

// Nested returns an internal type.
func Nested() secret.Token { return secret.Token{} }
