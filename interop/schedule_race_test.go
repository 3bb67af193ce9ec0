//go:build race

package interop

// raceEnabled: this test binary was built with -race.
const raceEnabled = true
