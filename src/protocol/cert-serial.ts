/**
 * The one form of a certificate serial number zcc logs and compares: lower-case hex without
 * colons or leading zeros. Node's X509Certificate prints upper case with leading zeros kept
 * ("0B8F…"), the CA's issuance records strip them; mixing the two made a serial that starts with
 * a 0 (one in sixteen) print two ways in one log line. Callers pass a well-formed serial (from a
 * parsed certificate); the CA validates untrusted input first (normalizeSerial in edge/ca).
 */
export function canonicalSerial(serial: string): string {
  return serial.replace(/:/g, '').toLowerCase().replace(/^0+(?=.)/, '');
}
