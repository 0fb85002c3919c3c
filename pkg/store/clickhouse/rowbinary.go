package clickhouse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// binaryRows is a whole result in RowBinaryWithNamesAndTypes, decoded into the Go
// values clickhouse-go scans the same types into (String → string, UInt64 →
// uint64, DateTime64 → time.Time, Array(T) → []T, Nullable(T) → *T, …).
type binaryRows struct {
	cols []binaryColumn
	data [][]any
	pos  int // 1-based index of the current row
}

type binaryColumn struct {
	name string
	typ  string
	dec  *decoder
}

func (c binaryColumn) Name() string             { return c.name }
func (c binaryColumn) Nullable() bool           { return strings.HasPrefix(c.typ, "Nullable(") }
func (c binaryColumn) ScanType() reflect.Type   { return c.dec.goType }
func (c binaryColumn) DatabaseTypeName() string { return c.typ }

func (r *binaryRows) Next() bool   { r.pos++; return r.pos <= len(r.data) }
func (r *binaryRows) Err() error   { return nil }
func (r *binaryRows) Close() error { return nil }
func (r *binaryRows) ColumnTypes() []driver.ColumnType {
	out := make([]driver.ColumnType, len(r.cols))
	for i, c := range r.cols {
		out[i] = c
	}
	return out
}

func (r *binaryRows) Scan(dest ...any) error {
	if r.pos < 1 || r.pos > len(r.data) {
		return errors.New("clickhouse: Scan without a current row")
	}
	row := r.data[r.pos-1]
	if len(dest) != len(row) {
		return fmt.Errorf("clickhouse: Scan of %d values into %d destinations", len(row), len(dest))
	}
	for i, d := range dest {
		if err := assign(d, row[i]); err != nil {
			return fmt.Errorf("clickhouse: column %s (%s): %w", r.cols[i].name, r.cols[i].typ, err)
		}
	}
	return nil
}

// assign stores v in the pointer dest, converting between numeric types and
// through pointers and slices as the native driver does for the store's scans.
func assign(dest, v any) error {
	dv := reflect.ValueOf(dest)
	if dv.Kind() != reflect.Pointer || dv.IsNil() {
		return fmt.Errorf("destination %T is not a non-nil pointer", dest)
	}
	return assignValue(dv.Elem(), reflect.ValueOf(v))
}

func assignValue(d, s reflect.Value) error {
	switch {
	case !s.IsValid() || (s.Kind() == reflect.Pointer && s.IsNil()):
		d.SetZero()
		return nil
	case s.Type().AssignableTo(d.Type()):
		d.Set(s)
		return nil
	case d.Kind() == reflect.Interface && s.Type().Implements(d.Type()):
		d.Set(s)
		return nil
	case s.Kind() == reflect.Pointer:
		return assignValue(d, s.Elem())
	case d.Kind() == reflect.Pointer:
		p := reflect.New(d.Type().Elem())
		if err := assignValue(p.Elem(), s); err != nil {
			return err
		}
		d.Set(p)
		return nil
	case numeric(s.Kind()) && numeric(d.Kind()):
		d.Set(s.Convert(d.Type()))
		return nil
	case s.Kind() == reflect.Slice && d.Kind() == reflect.Slice:
		out := reflect.MakeSlice(d.Type(), s.Len(), s.Len())
		for i := 0; i < s.Len(); i++ {
			if err := assignValue(out.Index(i), s.Index(i)); err != nil {
				return err
			}
		}
		d.Set(out)
		return nil
	}
	return fmt.Errorf("cannot scan %s into %s", s.Type(), d.Type())
}

func numeric(k reflect.Kind) bool {
	// Not Bool: reflect cannot convert between bool and numbers (a Bool column
	// scans into a bool through the assignable case).
	return (k >= reflect.Int && k <= reflect.Uint64) || k == reflect.Float32 || k == reflect.Float64
}

// decodeRowBinary decodes a RowBinaryWithNamesAndTypes result.
func decodeRowBinary(b []byte) (*binaryRows, error) {
	r := &reader{b: b}
	if len(b) == 0 {
		return &binaryRows{}, nil
	}
	n := int(r.uvarint())
	names := make([]string, n)
	for i := range names {
		names[i] = r.str()
	}
	out := &binaryRows{cols: make([]binaryColumn, n)}
	for i := range n {
		typ := r.str()
		dec, err := parseType(typ)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: column %s: %w", names[i], err)
		}
		out.cols[i] = binaryColumn{name: names[i], typ: typ, dec: dec}
	}
	for r.err == nil && r.off < len(r.b) {
		row := make([]any, n)
		for i, c := range out.cols {
			row[i] = c.dec.read(r)
		}
		out.data = append(out.data, row)
	}
	if r.err != nil {
		return nil, fmt.Errorf("clickhouse: decode result: %w", r.err)
	}
	return out, nil
}

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || r.off+n > len(r.b) {
		r.err = errors.New("truncated result")
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.err = errors.New("bad length prefix")
		return 0
	}
	r.off += n
	return v
}

func (r *reader) str() string { return string(r.take(int(r.uvarint()))) }

func (r *reader) u64(n int) uint64 {
	p := r.take(n)
	if p == nil {
		return 0
	}
	var buf [8]byte
	copy(buf[:], p)
	return binary.LittleEndian.Uint64(buf[:])
}

// decoder reads one value of a ClickHouse type.
type decoder struct {
	goType reflect.Type
	read   func(r *reader) any
}

func fixed[T any](n int, conv func(uint64) T) *decoder {
	return &decoder{goType: reflect.TypeFor[T](), read: func(r *reader) any { return conv(r.u64(n)) }}
}

var scalarTypes = map[string]*decoder{
	"String":  {reflect.TypeFor[string](), func(r *reader) any { return r.str() }},
	"UInt8":   fixed(1, func(v uint64) uint8 { return uint8(v) }),
	"UInt16":  fixed(2, func(v uint64) uint16 { return uint16(v) }),
	"UInt32":  fixed(4, func(v uint64) uint32 { return uint32(v) }),
	"UInt64":  fixed(8, func(v uint64) uint64 { return v }),
	"Int8":    fixed(1, func(v uint64) int8 { return int8(v) }),
	"Int16":   fixed(2, func(v uint64) int16 { return int16(v) }),
	"Int32":   fixed(4, func(v uint64) int32 { return int32(v) }),
	"Int64":   fixed(8, func(v uint64) int64 { return int64(v) }),
	"Bool":    fixed(1, func(v uint64) bool { return v != 0 }),
	"Float32": fixed(4, func(v uint64) float32 { return math.Float32frombits(uint32(v)) }),
	"Float64": fixed(8, func(v uint64) float64 { return math.Float64frombits(v) }),
	"Date":    fixed(2, func(v uint64) time.Time { return time.Unix(int64(v)*86400, 0).UTC() }),
	"Date32":  fixed(4, func(v uint64) time.Time { return time.Unix(int64(int32(v))*86400, 0).UTC() }),
	"UUID": {reflect.TypeFor[string](), func(r *reader) any {
		hi, lo := r.u64(8), r.u64(8)
		s := fmt.Sprintf("%016x%016x", hi, lo)
		return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
	}},
	"Nothing":  {reflect.TypeFor[any](), func(r *reader) any { return nil }},
	"DateTime": fixed(4, func(v uint64) time.Time { return time.Unix(int64(v), 0).UTC() }),
}

// parseType returns the decoder of a type name as the server prints it.
func parseType(t string) (*decoder, error) {
	t = strings.TrimSpace(t)
	if d, ok := scalarTypes[t]; ok {
		return d, nil
	}
	name, arg, ok := strings.Cut(t, "(")
	if !ok || !strings.HasSuffix(arg, ")") {
		return nil, fmt.Errorf("type %s is not supported by the embedded engine's reader", t)
	}
	arg = arg[:len(arg)-1]
	switch name {
	case "LowCardinality", "SimpleAggregateFunction":
		if name == "SimpleAggregateFunction" {
			_, arg, _ = strings.Cut(arg, ",")
		}
		return parseType(arg)
	case "Nullable":
		inner, err := parseType(arg)
		if err != nil {
			return nil, err
		}
		return &decoder{goType: reflect.PointerTo(inner.goType), read: func(r *reader) any {
			if p := r.take(1); p == nil || p[0] != 0 {
				return reflect.Zero(reflect.PointerTo(inner.goType)).Interface()
			}
			v := reflect.New(inner.goType)
			if x := inner.read(r); x != nil {
				v.Elem().Set(reflect.ValueOf(x))
			}
			return v.Interface()
		}}, nil
	case "Array":
		inner, err := parseType(arg)
		if err != nil {
			return nil, err
		}
		st := reflect.SliceOf(inner.goType)
		return &decoder{goType: st, read: func(r *reader) any {
			n := int(r.uvarint())
			if r.err != nil || n > len(r.b) {
				r.err = errors.New("bad array length")
				return reflect.Zero(st).Interface()
			}
			out := reflect.MakeSlice(st, n, n)
			for i := range n {
				if x := inner.read(r); x != nil {
					out.Index(i).Set(reflect.ValueOf(x))
				}
			}
			return out.Interface()
		}}, nil
	case "Map":
		return mapType(arg)
	case "FixedString":
		n, err := strconv.Atoi(arg)
		if err != nil {
			return nil, fmt.Errorf("type %s: %w", t, err)
		}
		return &decoder{goType: reflect.TypeFor[string](), read: func(r *reader) any { return string(r.take(n)) }}, nil
	case "DateTime":
		return fixed(4, func(v uint64) time.Time { return time.Unix(int64(v), 0).UTC() }), nil
	case "DateTime64":
		p, _, _ := strings.Cut(arg, ",")
		prec, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || prec < 0 || prec > 9 {
			return nil, fmt.Errorf("type %s: bad precision", t)
		}
		scale := int64(math.Pow10(9 - prec))
		return fixed(8, func(v uint64) time.Time { return time.Unix(0, int64(v)*scale).UTC() }), nil
	case "Enum8", "Enum16":
		return enumType(name, arg)
	}
	return nil, fmt.Errorf("type %s is not supported by the embedded engine's reader", t)
}

func mapType(arg string) (*decoder, error) {
	k, v, ok := splitTop(arg)
	if !ok {
		return nil, fmt.Errorf("type Map(%s): want two types", arg)
	}
	kd, err := parseType(k)
	if err != nil {
		return nil, err
	}
	vd, err := parseType(v)
	if err != nil {
		return nil, err
	}
	mt := reflect.MapOf(kd.goType, vd.goType)
	return &decoder{goType: mt, read: func(r *reader) any {
		n := int(r.uvarint())
		out := reflect.MakeMap(mt)
		for i := 0; i < n && r.err == nil; i++ {
			key, val := reflect.ValueOf(kd.read(r)), reflect.ValueOf(vd.read(r))
			if key.IsValid() && val.IsValid() {
				out.SetMapIndex(key, val)
			}
		}
		return out.Interface()
	}}, nil
}

// splitTop splits "A, B" at the first comma outside parentheses.
func splitTop(s string) (string, string, bool) {
	depth := 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				return strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:]), true
			}
		}
	}
	return "", "", false
}

// enumType reads Enum8/Enum16 ('name' = n, ...) values as their names.
func enumType(name, arg string) (*decoder, error) {
	names := map[int64]string{}
	for _, part := range strings.Split(arg, ",") {
		lit, num, ok := strings.Cut(part, "=")
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		lit = strings.TrimSpace(lit)
		if !ok || err != nil || len(lit) < 2 {
			return nil, fmt.Errorf("type %s(%s) is not supported by the embedded engine's reader", name, arg)
		}
		names[n] = strings.ReplaceAll(lit[1:len(lit)-1], `\'`, `'`)
	}
	size := 1
	if name == "Enum16" {
		size = 2
	}
	return &decoder{goType: reflect.TypeFor[string](), read: func(r *reader) any {
		v := r.u64(size)
		if size == 1 {
			return names[int64(int8(v))]
		}
		return names[int64(int16(v))]
	}}, nil
}
