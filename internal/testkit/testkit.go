// Package testkit holds the helpers that swarmgate's tests share: a fake
// clock, a throwaway certificate authority, one loop that waits for a
// condition until a deadline, and a reader of counters and gauges. Only _test.go files import it, and nothing in
// it is global: every clock and CA belongs to the test that made it.
package testkit
