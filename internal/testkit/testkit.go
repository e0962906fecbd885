// Package testkit holds the helpers that swarmgate's tests share: a fake
// clock, a throwaway certificate authority, one loop that waits for a
// condition until a deadline (and one wait for a value on a channel), a
// reader of counters and gauges, and HTTP backends (named, WebSocket echo,
// event stream) with the routes and requests to them.
// Only _test.go files import it, and nothing in it is global: every clock,
// CA and server belongs to the test that made it.
package testkit
