import pino from 'pino';
import { ChangeMonitor } from '../../node-agent/change-monitor.js';

describe('ChangeMonitor', () => {
  it('turns a burst of kernel events into one re-discovery, and survives a feed that cannot start', async () => {
    let changes = 0;
    const monitor = new ChangeMonitor({
      commands: [
        // Plays `udevadm monitor --kernel`: three events at once, then quiet.
        [process.execPath, '-e', 'for (const e of ["add", "bind", "change"]) console.log(`KERNEL ${e} /devices/pci0000:00/0000:3b:00.0 (pci)`); setTimeout(() => {}, 5000)'],
        ['/nonexistent/udevadm', 'monitor'],
      ],
      onChange: () => changes++,
      logger: pino({ level: 'silent' }),
      debounceMs: 100,
    });
    monitor.start();
    try {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(changes).toBe(1);
    } finally {
      monitor.stop();
    }
  });
});
