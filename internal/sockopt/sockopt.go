// Package sockopt sets the socket options swarmgate relies on where the
// standard library has no knob for them.
package sockopt
