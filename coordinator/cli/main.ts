#!/usr/bin/env node
import { runTwopc } from './program';

runTwopc(process.argv);
