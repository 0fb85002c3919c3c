package event

import "strconv"

// path is where a walk over a document stands, kept as reference tokens so that its
// JSON Pointer (RFC 6901) is built only when an error names it. Building the pointer
// of every key on the way, as the walks once did, was a string concatenation per
// member of every accepted event (about a tenth of ingest's CPU per event) for
// pointers that were thrown away.
//
// A child path shares its parent's backing array: it is valid while the walk is
// inside that child, which is all a depth-first walk needs. Keep the String, not
// the path.
type path []pathToken

// pathToken is one reference token: an object member's key, or (index >= 0) an
// array element.
type pathToken struct {
	key   string
	index int
}

// key is the path of member k of the object at p.
func (p path) key(k string) path { return append(p, pathToken{key: k, index: -1}) }

// elem is the path of element i of the array at p.
func (p path) elem(i int) path { return append(p, pathToken{index: i}) }

// String is the JSON Pointer of p.
func (p path) String() string {
	ptr := ""
	for _, t := range p {
		if t.index >= 0 {
			ptr += "/" + strconv.Itoa(t.index)
		} else {
			ptr = pointerAppend(ptr, t.key)
		}
	}
	return ptr
}
