package s3

import "context"

// Put exposes the create-only upload to the external tests.
func (s *Sink) Put(ctx context.Context, key string, body []byte) error {
	return s.put(ctx, key, body, "text/plain")
}
