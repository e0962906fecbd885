package discovery

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines after every test of the package has
// run, then removes what the Swarm tests built once for all of them.
func TestMain(m *testing.M) {
	code := m.Run()
	removeTestImage()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
