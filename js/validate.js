// Checks of user-supplied options and arrays. Each failure names the parameter
// and what was expected, so a mistake is fixable from the message alone.
import { rangeError, typeError } from './errors.js';

const MAX_INT = 2 ** 31 - 1;

function describe(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an Array';
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  return typeof value === 'number' ? String(value) : `a ${typeof value}`;
}

export function optionsObject(where, options) {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw typeError(where, 'options', `expected an options object, got ${describe(options)}`);
  }
  return options;
}

export function positiveInt(where, name, value, fallback) {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number') {
    throw typeError(where, name, `expected a positive integer, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < 1 || value > MAX_INT) {
    throw rangeError(where, name, `expected a positive integer, got ${value}`);
  }
  return value;
}

export function nonNegativeInt(where, name, value, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') {
    throw typeError(where, name, `expected a non-negative integer, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < 0 || value > MAX_INT) {
    throw rangeError(where, name, `expected a non-negative integer, got ${value}`);
  }
  return value;
}

export function finiteNumber(where, name, value, fallback, { min = -Infinity, max = Infinity, maxExclusive = false } = {}) {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') {
    throw typeError(where, name, `expected a number, got ${describe(value)}`);
  }
  const tooBig = maxExclusive ? value >= max : value > max;
  if (!Number.isFinite(value) || value < min || tooBig) {
    const bound = max === Infinity ? `>= ${min}` : `in [${min}, ${max}${maxExclusive ? ')' : ']'}`;
    throw rangeError(where, name, `expected a finite number ${min === -Infinity && max === Infinity ? '' : bound}, got ${value}`.replace('  ', ' '));
  }
  return value;
}

export function boolean(where, name, value, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw typeError(where, name, `expected true or false, got ${describe(value)}`);
  }
  return value;
}

export function oneOf(where, name, value, allowed, fallback) {
  if (value === undefined && fallback !== undefined) return fallback;
  if (!allowed.includes(value)) {
    throw (typeof value === 'string' ? rangeError : typeError)(
      where, name, `expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${describe(value)}${typeof value === 'string' ? ` "${value}"` : ''}`);
  }
  return value;
}

export function float32Array(where, name, value) {
  if (!(value instanceof Float32Array)) {
    throw typeError(where, name, `expected a Float32Array, got ${describe(value)}`);
  }
  return value;
}

// An optional array the caller supplies to receive a result: absent (undefined or null)
// or a Float32Array of exactly `length` floats.
export function outputArray(where, name, value, length, lengthDescription) {
  if (value === undefined || value === null) return undefined;
  float32Array(where, name, value);
  if (value.length !== length) {
    throw rangeError(where, name, `length ${value.length} should be ${lengthDescription} = ${length}`);
  }
  return value;
}

// The number of rows an array of `rowSize`-float rows holds, or a RangeError.
export function rowCount(where, name, array, rowSize, rowDescription) {
  if (array.length === 0 || array.length % rowSize !== 0) {
    throw rangeError(where, name,
      `length ${array.length} is not a positive multiple of ${rowDescription} = ${rowSize}`);
  }
  return array.length / rowSize;
}

// A seed: a non-negative safe integer (dropout masks and initial weights derive from it).
export function seedValue(where, value, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw (typeof value === 'number' ? rangeError : typeError)(where, 'seed',
      `expected a non-negative safe integer, got ${String(value)}`);
  }
  return value;
}
