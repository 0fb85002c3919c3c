package event

// SlugPattern is the rule for tenants, sources and saved-query names: the event
// schema's "slug" ($defs.slug: 1 to 64 of a-z 0-9 _ . -, starting with a letter or
// digit) as one regular expression. A tenant is checked by it at ingest, in the
// query API, in the SQL scope and in trailctl; one definition keeps them from
// drifting apart, for a tenant accepted by one and refused (or scoped differently)
// by another. Error bodies name it as the rule's limit.
const SlugPattern = `^[a-z0-9][a-z0-9_.-]{0,63}$`

// IsSlug reports whether s matches SlugPattern, without the regexp engine.
func IsSlug(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}
