/**
 * PCI addresses in the full domain form sysfs uses: "0000:3b:00.1" (domain:bus:device.function).
 * Only this form is accepted, so an address from a spec can be compared with, and joined to,
 * sysfs paths without normalisation.
 */
export const PCI_ADDRESS_PATTERN = '^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\\.[0-7]$';
const PCI_ADDRESS = new RegExp(PCI_ADDRESS_PATTERN);

/** A PCI vendor or device id: four lower-case hex digits, as in sysfs without the 0x. */
export const PCI_ID_PATTERN = '^[0-9a-f]{4}$';

/** True when `value` is a full PCI address such as 0000:3b:00.1. */
export function isPciAddress(value: string): boolean {
  return PCI_ADDRESS.test(value);
}
