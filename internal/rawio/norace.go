//go:build !race

package rawio

func raceAcquire(uintptr) {}

func raceRelease(uintptr) {}
