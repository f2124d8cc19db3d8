/**
 * CI's share of simulator seeds on 3-member clusters (the soak is `npm run sim:soak`).
 */
import { describe } from 'vitest';
import { seedBatch } from './seed-batch.js';

describe('simulator: 3 members', () => seedBatch(3, 1, 500));
