// DropoutLayer: train(), eval(), training and nextDropoutSeed, the same for every layer whose
// C++ handle applies dropout in training mode (as PyTorch's module.train() / module.eval()).
// A subclass passes, from its constructor, its class name for messages and a function that
// gives its live handle (raising the disposed error after dispose()); its handle's methods
// setTraining(mode), training() and nextDropoutSeed() do the rest.
import { boolean } from './validate.js';

export class DropoutLayer {
  #where;
  #liveHandle;

  constructor(where, liveHandle) {
    this.#where = where;
    this.#liveHandle = liveHandle;
  }

  // Training mode applies dropout (a fresh mask per call, from seed + the number of earlier
  // training calls); eval mode, the default, does not, so equal inputs give equal outputs.
  train(mode = true) {
    const handle = this.#liveHandle('train');
    handle.setTraining(boolean(`${this.#where}.train`, 'mode', mode));
    return this;
  }

  eval() {
    return this.train(false);
  }

  get training() {
    return this.#liveHandle('training').training();
  }

  // The seed of the dropout mask the next training call draws (the flash kernel's
  // counter-based rule), so a call can be reproduced.
  get nextDropoutSeed() {
    return this.#liveHandle('nextDropoutSeed').nextDropoutSeed();
  }
}
