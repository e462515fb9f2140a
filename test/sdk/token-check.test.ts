import { tokenChecker, tokenMatches } from '../../participant-sdk/src/signature';

describe('bearer token comparison', () => {
  it('tokenChecker accepts exactly the configured tokens, as tokenMatches does', () => {
    const accepts = tokenChecker(['api-token-0123456789', 'admin-token-0123456789']);
    for (const given of ['api-token-0123456789', 'admin-token-0123456789', 'api-token-012345678', 'API-TOKEN-0123456789', '', undefined]) {
      const expected = tokenMatches('api-token-0123456789', given) || tokenMatches('admin-token-0123456789', given);
      expect([given, accepts(given)]).toEqual([given, expected]);
    }
    expect(accepts('api-token-0123456789')).toBe(true);
    expect(accepts(undefined)).toBe(false);
  });

  it('with no tokens configured, nothing matches', () => {
    expect(tokenChecker([])('anything')).toBe(false);
  });
});
