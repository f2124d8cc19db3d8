/**
 * CI's share of simulator seeds on 5-member clusters (the soak is `npm run sim:soak`).
 */
import { describe } from 'vitest';
import { seedBatch } from './seed-batch.js';

describe('simulator: 5 members', () => seedBatch(5, 1, 500));
