/** RFC 9110 syntax the policies check header names and values against at load (a bad one would make Node throw per response). */
export const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
export const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
