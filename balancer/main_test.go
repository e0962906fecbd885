package balancer

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// endpoints returns n endpoints "10.0.0.i:80" from p.
func endpoints(p *Pool, n int) []*Endpoint {
	eps := make([]*Endpoint, n)
	for i := range eps {
		eps[i] = p.Endpoint(addr(i))
	}
	return eps
}

func addr(i int) string {
	return "10.0.0." + itoa(i+1) + ":80"
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
