// Turns the bindings' status strings ("" or "Class\x1fparam\x1fmessage") into JS errors.
const ERROR_CLASSES = { TypeError, RangeError, Error };

export function raiseStatus(status, where) {
  if (status === '') return;
  const [kind, param, message] = status.split('\x1f');
  const ErrorClass = ERROR_CLASSES[kind] || Error;
  const err = new ErrorClass(`${where}: ${param}: ${message}`);
  err.param = param;
  throw err;
}

export function typeError(where, param, message) {
  const err = new TypeError(`${where}: ${param}: ${message}`);
  err.param = param;
  return err;
}

export function rangeError(where, param, message) {
  const err = new RangeError(`${where}: ${param}: ${message}`);
  err.param = param;
  return err;
}
