package anticheattest

import (
	"crypto/sha256"
	"encoding/asn1"
	"math/big"
)

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

func parseASN1Sig(der []byte) (r, s *big.Int, err error) {
	var v struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &v); err != nil {
		return nil, nil, err
	}
	return v.R, v.S, nil
}
