package main

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// runMainEnv, set in a test binary's environment, makes it the swarmgate
// command with the binary's arguments instead of the tests: for tests that
// need a component in a process of its own (startEdgeProcess).
const runMainEnv = "SGTEST_RUN_MAIN"

// certmagic keeps one rate limiter goroutine per CA account for the life of
// the process (a package-level map it never stops).
func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		if err := run(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "swarmgate:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).permit"))
}
