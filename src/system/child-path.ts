// Leaf module (read by the small root process before it switches users, so it imports nothing).

/** The only PATH a child sees: programs come from the system, never from a caller's directories. */
export const CHILD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
