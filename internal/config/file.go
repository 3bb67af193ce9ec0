package config

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Key describes one configuration key.
type Key struct {
	Name    string
	Help    string
	Default string
	field   int
}

var keys = func() []Key {
	t := reflect.TypeOf(Config{})
	def := reflect.ValueOf(DefaultConfig())
	var ks []Key
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("conf")
		if name == "" {
			continue
		}
		ks = append(ks, Key{Name: name, Help: f.Tag.Get("help"), Default: fmt.Sprint(def.Field(i).Interface()), field: i})
	}
	sort.Slice(ks, func(a, b int) bool { return ks[a].Name < ks[b].Name })
	return ks
}()

// Keys lists every key the broker understands, sorted by name.
func Keys() []Key { return append([]Key(nil), keys...) }

func lookup(name string) (Key, bool) {
	for _, k := range keys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// Set assigns one key from its text form.
func (c *Config) Set(name, value string) error {
	k, ok := lookup(name)
	if !ok {
		return fmt.Errorf("%w: unknown key %q", ErrInvalid, name)
	}
	f := reflect.ValueOf(c).Elem().Field(k.field)
	value = strings.TrimSpace(value)
	switch f.Kind() {
	case reflect.String:
		f.SetString(value)
	case reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return bad(name, value, "true or false")
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || f.OverflowInt(n) {
			return bad(name, value, "an integer")
		}
		f.SetInt(n)
	default:
		return fmt.Errorf("config: key %s has unsupported kind %s", name, f.Kind())
	}
	return nil
}

// Get returns one key's value in text form.
func (c *Config) Get(name string) (string, bool) {
	k, ok := lookup(name)
	if !ok {
		return "", false
	}
	return fmt.Sprint(reflect.ValueOf(c).Elem().Field(k.field).Interface()), true
}

// ParseFile reads a broker.conf file into c; see Parse.
func (c *Config) ParseFile(path string) (unknown []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	unknown, err = c.Parse(f)
	if err != nil {
		return unknown, fmt.Errorf("%s: %w", path, err)
	}
	return unknown, nil
}

// Parse reads Java-properties style "key=value" lines ('#' and '!'
// comments, "key: value" and "key value" also accepted, as Java does) and
// sets the known keys. Unknown keys are returned, not rejected, so an
// Apache RocketMQ broker.conf loads as it is.
func (c *Config) Parse(r io.Reader) (unknown []string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' || s[0] == '!' {
			continue
		}
		i := strings.IndexAny(s, "=: \t")
		if i <= 0 {
			return unknown, fmt.Errorf("line %d: %q is not key=value", line, s)
		}
		k, v := s[:i], strings.TrimSpace(s[i+1:])
		if s[i] == ' ' || s[i] == '\t' {
			v = strings.TrimLeft(v, "=: \t")
		}
		if _, ok := lookup(k); !ok {
			unknown = append(unknown, k)
			continue
		}
		if err := c.Set(k, v); err != nil {
			return unknown, fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return unknown, fmt.Errorf("config: read: %w", err)
	}
	return unknown, nil
}
