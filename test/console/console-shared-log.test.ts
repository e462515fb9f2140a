import { describeIfRedisServer, RedisServer } from '../../harness/redis-server';
import { ADMIN_TOKEN, startTestService, type TestService } from '../service/service-fixture';
import { chromiumPath, describeIfChromium, launchChromium, seriousViolations, type Browser } from './browser';

// The overview on a shared log: instances and their leases, read from the store (issue 14: "instances and
// their leases"), and the log's health, in the browser.

describeIfChromium('console overview on a shared (Redis) log', () => {
  describeIfRedisServer('with a redis-server', () => {
    let redis: RedisServer;
    let svc: TestService;
    let browser: Browser;

    beforeAll(async () => {
      redis = await RedisServer.start({ name: 'console' });
      svc = await startTestService({ log: `${redis.url}?namespace=console${process.pid}`, instance: { name: 'coordinator-one', leaseMs: 5_000 } });
      if (chromiumPath()) browser = await launchChromium();
    });

    afterAll(async () => {
      await browser?.close();
      await svc?.close();
      await redis?.destroy();
    });

    it('shows this instance, its lease token and expiry, and a writable redis store', async () => {
      const page = await browser.newPage();
      await page.goto(`${svc.base}/ui`);
      await page.fill('#token', ADMIN_TOKEN);
      await page.click('#signin button[type=submit]');
      await page.waitForSelector('#instances table');
      const instances = await page.textContent('#instances');
      expect(instances).toContain('Instances on the redis log');
      expect(instances).toContain('coordinator-one');
      expect(instances).toMatch(/self/);
      expect(instances).toMatch(/s left\)/);
      expect(await page.textContent('#health')).toMatch(/Store: redis.*Writable: yes.*Ready \(recovery done, taking work\): yes/s);
      expect(await seriousViolations(page)).toEqual([]);
      expect(browser.errors).toEqual([]);
      await page.close();
    });
  });
});
