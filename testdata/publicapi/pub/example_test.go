package pub_test

import (
	"fmt"

	"example.com/fixture/internal/secret"
	"example.com/fixture/pub"
)

func Example() {
	fmt.Println(pub.NewThing(secret.Token{}).Public)
}

func ExampleFine() {
	fmt.Println(pub.Fine(1))
}
