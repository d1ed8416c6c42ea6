package jsonerr

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

type doc struct {
	Name    string         `json:"name"`
	Serial  int            `json:"serial"`
	Hosts   map[string]int `json:"hosts"`
	Created time.Time      `json:"created"`
}

func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"", "it is empty"},
		{"  \n", "it is empty"},
		{`{"name": "x", "ser`, "it ends early, after 18 bytes"},
		{"{\n  \"name\": x\n}", "it is not valid JSON at line 2, column 11: invalid character 'x'"},
		{"{\n  \"serial\": \"7\"\n}", `field "serial" at line 2, column 15 is a JSON string, where a whole number that fits in 64 bits is expected`},
		{`{"serial": 1e400}`, `field "serial" at line 1, column 16 is a JSON number 1e400, where a whole number`},
		{`{"hosts": [1]}`, `field "hosts" at line 1, column 11 is a JSON array, where an object is expected`},
		{`[1, 2]`, `the document at line 1, column 1 is a JSON array, where an object is expected`},
		{`{"created": "yesterday"}`, `a time is not written as RFC 3339`},
	} {
		var d doc
		err := json.Unmarshal([]byte(tc.in), &d)
		if err == nil {
			t.Errorf("%q: no error to explain", tc.in)
			continue
		}
		got := Explain([]byte(tc.in), err)
		if !strings.Contains(got.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.in, got, tc.want)
		}
		if !errors.Is(got, err) {
			t.Errorf("%q: the explanation does not wrap %v", tc.in, err)
		}
	}
	if Explain([]byte("{}"), nil) != nil {
		t.Error("no error, yet an explanation")
	}
}
