//! One collection task's calls: each AWS operation is one line, and a
//! failure becomes a recorded gap (never a crash, never a silent "none").

use std::future::Future;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::snapshot::Gap;
use crate::vocab::{Operation, Service};

/// Anything an AWS call can fail with, as a gap.
pub(crate) trait GapSource {
    fn to_gap(&self, operation: Operation, region: Option<&str>) -> Gap;
}

impl<E, R> GapSource for SdkError<E, R>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    fn to_gap(&self, operation: Operation, region: Option<&str>) -> Gap {
        super::error::gap(operation, region, self)
    }
}

/// The calls of one service in one region (or globally), and their gaps.
#[derive(Debug)]
pub struct Calls {
    service: Service,
    region: Option<String>,
    pub gaps: Vec<Gap>,
}

impl Calls {
    pub fn new(service: Service, region: Option<&str>) -> Calls {
        Calls {
            service,
            region: region.map(str::to_string),
            gaps: Vec::new(),
        }
    }

    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// Awaits one call, or one paginated listing (`….send().try_collect()`):
    /// its output, or `None` with the failure recorded as a gap.
    pub(crate) async fn call<T, E: GapSource>(
        &mut self,
        operation: Operation,
        call: impl Future<Output = Result<T, E>>,
    ) -> Option<T> {
        // A collector names only operations of its own service; the guard
        // would refuse anything else anyway, but the gap would be misfiled.
        debug_assert_eq!(operation.service, self.service, "{operation}");
        match call.await {
            Ok(t) => Some(t),
            Err(e) => {
                self.gaps.push(e.to_gap(operation, self.region.as_deref()));
                None
            }
        }
    }

    /// A listing converted item by item; empty (with the gap recorded)
    /// when it fails: the gap, not the empty list, tells the evaluator.
    pub(crate) async fn list<T, U, E: GapSource>(
        &mut self,
        operation: Operation,
        call: impl Future<Output = Result<Vec<T>, E>>,
        convert: impl Fn(&T) -> U,
    ) -> Vec<U> {
        self.call(operation, call)
            .await
            .map(|items| items.iter().map(convert).collect())
            .unwrap_or_default()
    }
}

/// Every item of a paginated listing, as one future for [`Calls::call`].
macro_rules! items {
    ($request:expr) => {
        $request.into_paginator().items().send().try_collect()
    };
}
pub(crate) use items;

/// Every page of a paginated call whose pages carry more than one list.
macro_rules! pages {
    ($request:expr) => {
        $request.into_paginator().send().try_collect()
    };
}
pub(crate) use pages;
