// Package pub is the fixture's public package; it is built on internal/secret.
package pub

import "example.com/fixture/internal/secret"

// NewThing returns a thing made from a secret.Token.
func NewThing(t secret.Token) *Thing { return &Thing{Secret: t} }

// Fine is an exported function that mentions no internal type.
func Fine(x int) string { return "" }

// Thing has an exported field of an internal type.
type Thing struct {
	Secret secret.Token
	Public int
	hidden secret.Token
}

// Hidden returns internal values from an exported method.
func (t *Thing) Hidden() []secret.Token { return []secret.Token{t.hidden} }

func (t *Thing) unexported() secret.Token { return t.hidden }

// Config has a field in a map and a doc comment that points at the internal
// package.
type Config struct {
	Secret map[string]secret.Token
	// Wrapped works as internal/secret says.
	Wrapped int
	Public  string
}

// Embeds embeds an internal type: the field is exported (Token).
type Embeds struct{ secret.Token }

// Promoted promotes a field from an unexported embedded struct.
type Promoted struct{ inner }

type inner struct{ Shared chan secret.Token }

// Iface has a method with an internal result.
type Iface interface{ Get() secret.Token }

// Alias names an internal type.
type Alias = secret.Token

// Generic has an internal constraint.
type Generic[T secret.Constraint] struct{ V T }

// Wrapper is a func type over an internal type.
type Wrapper func(secret.Token) error

// Var has an internal type.
var Var = secret.Token{}

// Const has an internal type.
const Const = secret.Level(1)

// Clean is fine: its internal field is unexported.
type Clean struct {
	A int
	b secret.Token
}

// Use keeps the unexported names used.
func Use() { _ = Clean{}.b; _ = (&Thing{}).unexported; _ = Promoted{} }
