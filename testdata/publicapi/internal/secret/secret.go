// Package secret is the fixture's internal package.
package secret

// Token is an internal type.
type Token struct{ v int }

// String is a method promoted through embedding; its signature is fine.
func (Token) String() string { return "token" }

// Level is an internal named integer.
type Level int

// Constraint is an internal constraint.
type Constraint interface{ ~int | ~int64 }
