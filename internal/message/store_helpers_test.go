package message

import "testing"

func TestValidatePropertiesStringMatchesBytes(t *testing.T) {
	for _, s := range []string{"", "a\x01b\x02", "a\x01b", "\x01b\x02", "a\x01b\x01c\x02", "a\x01\x02", "a\x02", "a\x01b\x02c\x01d\x02", "\x02"} {
		if got, want := ValidatePropertiesString(s) == nil, ValidateProperties([]byte(s)) == nil; got != want {
			t.Errorf("%q: string form ok=%v, bytes form ok=%v", s, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		_ = ValidatePropertiesString("KEYS\x01k1 k2\x02TAGS\x01TagA\x02UNIQ_KEY\x01AABBCCDDEEFF00112233\x02")
	}); n != 0 {
		t.Errorf("ValidatePropertiesString allocates %v times", n)
	}
}

func FuzzValidatePropertiesString(f *testing.F) {
	f.Add("a\x01b\x02")
	f.Add("a\x01b")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidatePropertiesString(s) == nil, ValidateProperties([]byte(s)) == nil; got != want {
			t.Fatalf("%q: string form ok=%v, bytes form ok=%v", s, got, want)
		}
	})
}
